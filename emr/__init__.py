"""Run the streaming job and training on EMR Serverless: package, upload, submit, watch, cancel.

Read in the order of a deployment:

- ``Dockerfile``: the job's Python environment as a venv-pack archive, built on Amazon
  Linux 2023 so its interpreter and wheels match the EMR image.
- ``deployment.py``: what Terraform created (``terraform output -json``).
- ``artifacts.py``: entry points, config, jars and archive uploaded to S3, content-addressed.
- ``runs.py``: StartJobRun requests (streaming and training), status with backoff, logs, cancel.
- ``cost.py``: cost per day from the AWS list prices in ``prices.yaml``.

``python -m emr --help`` is the command line over all of it.
"""
