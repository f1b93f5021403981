"""The gradebook's commands of the ``mlph`` command line: thin click commands, each calling one library
function and printing its plain data; :func:`gradebook.cli.commands.commands.register` attaches them.

May import: every room of the gradebook. Nothing in the gradebook imports from here."""
