"""Entry point of the data stores' setup, run by the admin only (the one process that holds the
database admin's password and may create topics):

- PostgreSQL (``fraud.db.migrate``, ``fraud.roles``): the owner and the components' login roles
  where missing, the migrations not applied yet (as the owner), every component's grants;
- Kafka (``fraud.kafka.create_topics``): the three topics where missing (brokers never auto-create).

    .venv/bin/python jobs/migrate.py --config conf/local.yaml      (make up does it locally)
    python -m emr submit migrate                                    (in AWS: inside the VPC, its own role)

Idempotent; prints what it applied and created.
"""

from fraud.cli import ArgumentParser, run
from fraud.config import IAM, load_config


def main(argv=None) -> int:
    parser = ArgumentParser(prog="migrate.py", description="Create the database roles, apply pending migrations,"
                            " set the grants; create the Kafka topics.")
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    args = parser.parse_args(argv)
    config = load_config(args.config)

    from fraud.db import admin_dsn, migrate
    from fraud.kafka import client_settings, create_topics, topic_config

    applied = migrate(admin_dsn(config), iam=config.postgres.auth == IAM)
    created = create_topics(client_settings(config), config.kafka.topic_list(), config.kafka.partitions,
                            config.kafka.replication_factor, topic_config(config))
    print(f"applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}; roles and grants set;"
          f" created {len(created)} topic(s){': ' + ', '.join(created) if created else ''}")
    return 0


if __name__ == "__main__":
    run(main)
