from luskit.cli import app

app()
