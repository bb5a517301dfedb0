from provisioner.launcher import run

run()
