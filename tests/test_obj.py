"""The OBJ reader (depthface.facemodel.obj): the negative-index rule, polygons, errors with their line."""

from __future__ import annotations

import numpy as np
import pytest

from depthface.errors import InputError
from depthface.facemodel.obj import read_obj_mesh, write_obj_mesh

# Faces between vertex blocks: a negative index counts back from the vertices read *so far*. Against the
# total count (6) the same "f -3 -2 -1" would be vertices 3 4 5 instead of 0 1 2.
INTERLEAVED = """# two triangles, each written right after its vertices
v 0 0 0
v 1 0 0
v 0 1 0
f -3 -2 -1
v 5 0 0
v 6 0 0
v 5 1 0
f -3/1 -2/2 -1/3
f 1 -1 -6
"""


def test_negative_indices_count_back_from_the_vertices_read_so_far(tmp_path):
    path = tmp_path / "m.obj"
    path.write_text(INTERLEAVED)
    mesh = read_obj_mesh(path)
    assert mesh.vertices.shape == (6, 3)
    assert np.array_equal(mesh.polygons, [[0, 1, 2], [3, 4, 5], [0, 5, 0]])
    assert np.array_equal(mesh.faces, mesh.polygons)


def test_face_model_loader_reads_the_same_rule(tmp_path):
    """The raw ICT-FaceKit loader reads its meshes with the same reader."""
    from depthface.facemodel.loaders import _read_obj

    path = tmp_path / "m.obj"
    path.write_text(INTERLEAVED)
    v, polys = _read_obj(path, faces=True)
    assert np.array_equal(polys, [[0, 1, 2], [3, 4, 5], [0, 5, 0]])
    assert np.array_equal(_read_obj(path, faces=False)[0], v)


def test_positive_indices_may_name_later_vertices_and_polygons_stay_polygons(tmp_path):
    path = tmp_path / "m.obj"
    path.write_text("f 1 2 3 4\nv 0 0 0 1.0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvn 0 0 1\nf 4 3 2\n")
    mesh = read_obj_mesh(path)
    assert isinstance(mesh.polygons, list) and [p.tolist() for p in mesh.polygons] == [[0, 1, 2, 3], [3, 2, 1]]
    assert mesh.faces.tolist() == [[0, 1, 2], [0, 2, 3], [3, 2, 1]]  # fans
    only_vertices = read_obj_mesh(path, faces=False)
    assert np.array_equal(only_vertices.vertices, mesh.vertices) and only_vertices.faces.shape == (0, 3)


def test_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(7, 3))
    quads = np.array([[0, 1, 2, 3], [3, 4, 5, 6]])
    mesh = read_obj_mesh(write_obj_mesh(tmp_path / "q.obj", v, quads))
    assert np.array_equal(mesh.vertices, v) and np.array_equal(mesh.polygons, quads)


@pytest.mark.parametrize("text, problem", [
    ("v 0 0 0\nv 1 0 0\nf 1 2 3\n", "line 3: face index out of range (mesh has 2 vertices)"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf -1 -2 -4\n", "line 4: face index out of range"),  # before the first vertex
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", "line 4: face index out of range"),  # 0 is no OBJ index
    ("v 0 0 0\nv 1 0 zero\n", "line 2: vertex is not numeric"),
    ("v 0 0 0\nv 1 0\n", "line 2: vertex needs 3 coordinates"),
    ("v 0 0 0\nf 1 1\n", "line 2: a face needs at least 3 vertices"),
    ("v 0 0 0\nf 1 a 1\n", "line 2: face indices are not integers"),
    ("v 0 0 nan\n", "NaN/inf"),
    ("# nothing\n", "no vertices"),
])
def test_errors_name_the_line(tmp_path, text, problem):
    path = tmp_path / "bad.obj"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        read_obj_mesh(path)
    assert problem in str(e.value) and str(e.value).startswith(str(path))
    with pytest.raises(InputError, match="not found"):
        read_obj_mesh(tmp_path / "missing.obj")
