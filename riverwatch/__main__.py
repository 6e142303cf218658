from riverwatch.shell.cli import main

main()
