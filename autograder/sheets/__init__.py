"""Exercise sheets: :mod:`.validate` checks that a sheet is sound (`mlph validate`)."""
