"""The text of commands: shell words as a POSIX shell splits them, placeholders and how they
are filled and quoted, the parameters a command line gives, and sweeps' grids.

Pure rules over strings: imports only each other and the rules below (errors, names, output).
"""
