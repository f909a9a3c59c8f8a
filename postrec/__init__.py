"""The ``postrec`` command line: the entry point above api, worker, batch and common."""
