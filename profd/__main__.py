from profd.cli import main

main()
