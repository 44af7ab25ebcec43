"""The text of commands: shell words as a POSIX shell splits them, placeholders and how they
are filled and quoted, the parameters a command line gives, and sweeps' grids.

Pure rules over strings: imports only each other and the rules below (errors, names, output).
"""

# The version of params.py's reading rules. The index keeps every command's parameters
# read by them; a change of the rules must change this number, which makes a new index.
# (Here, not in params.py: the index needs it without importing the parser.)
PARAMETER_RULES = 2
