from audlang.cli import main

main()
