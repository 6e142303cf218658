from riverwatch.cli import main

main()
