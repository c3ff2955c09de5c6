"""Subcommands of the ``instructner`` CLI; each module has HELP, add_arguments() and run()."""
