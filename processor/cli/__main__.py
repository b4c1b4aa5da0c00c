from processor.cli import main

main()
