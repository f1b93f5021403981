"""The course web application (`mlph serve`): students, tutors and admins over the gradebook and the intake."""
