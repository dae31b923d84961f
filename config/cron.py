"""RQ cron configuration: ``manage.py rqcron config/cron.py`` runs the reconciler every minute."""

from rq import cron

cron.register("generation.jobs.reconcile", queue_name="default", interval=60)
cron.register("facelibrary.jobs.retire_expired_consents", queue_name="default", interval=3600)
cron.register("catalog.jobs.sweep_webhooks", queue_name="default", interval=60)
