"""The web application's routes, one module per audience (auth, student, tutor, admin, admin_edit), each
with a module-level ``router``. Route modules call the gradebook's and the intake's library functions;
they hold no rule of their own.

May import: :mod:`web` (security, templating, views), :mod:`gradebook`, :mod:`autograder`."""
