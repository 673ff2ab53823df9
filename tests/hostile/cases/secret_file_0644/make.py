import os
open("bmc-password", "w").write("hunter2\n")
os.chmod("bmc-password", 0o644)
