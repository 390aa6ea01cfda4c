"""The `seedlm-fpga` command line: `main` dispatches to one module per subcommand."""
