"""The `declic` command: one module per group of commands, `main` assembles them."""
