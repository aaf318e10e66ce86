from emerald.cli.main import app

app(prog_name="emerald")
