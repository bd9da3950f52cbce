"""Command-line interface (`depthface ...`): typer commands that parse options, call one library function
and print what it returns (``main`` and the command groups ``data_commands``, ``train_commands``,
``eval_commands``, ``experiment_commands``). No algorithm lives here (``tests/test_layering.py``)."""
