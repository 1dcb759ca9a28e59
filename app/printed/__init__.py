"""netscope as a faster netstat: everything it prints instead of opening the screen (app/cli.py picks which)."""
