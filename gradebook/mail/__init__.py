"""Mail to people: the one outbox (SMTP through the relay of ``[mail]`` in mlph.toml, or a dry run that writes
``.eml`` files) and the messages that go through it: set-password links, "your sheet was graded", regrade
answers and announcements to a tutorial group or the course.

May import: every room below it (:mod:`gradebook.exports` down to :mod:`gradebook.store`)."""
