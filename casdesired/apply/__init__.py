"""Apply: execute a reviewed plan safely, verify it, and leave a rollback plan."""
