"""Command-line interface (`depthface ...`): thin typer commands over the library's packages."""
