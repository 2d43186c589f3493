"""HTTP: the app factory, one router per resource, wire models, auth and error rendering."""
