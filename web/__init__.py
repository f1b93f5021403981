"""The course web application (`mlph serve`): students, tutors and admins over the gradebook and the
intake.

    routes      one module per audience (auth, student, tutor, admin, admin_edit), each a ``router``
    views, admin_data   what the pages show, read from the gradebook as plain data
    security    sessions, CSRF, login throttling, authorisation
    templating  Jinja2 with autoescape; templates/ and static/
    grid_html   the tutor grid's rows and panels, built in Python (its one loop that grows with the group)
    app         the application factory; middleware; settings (from the environment)

The web app calls the gradebook's and the intake's library functions (the same ones as the CLI);
nothing in :mod:`gradebook` or :mod:`autograder` imports :mod:`web` (but :mod:`autograder.cli`, which
attaches `mlph serve`)."""
