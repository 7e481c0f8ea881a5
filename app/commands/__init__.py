"""Admin commands (`quart --app app ...`) and the jobs they run: checks, demo data, pruning."""
