from conductor_sign.cli import main

main()
