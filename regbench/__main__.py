from regbench.cli.main import main

main()
