"""The HTTP edge: journey cookies, form parsing, page rendering and the one error translation."""
