# Chain the records written before the chain existed, in id order (their order of writing).
# The hash is computed by the same function the application uses, over the values as read
# back from the database, so verification recomputes exactly the same hashes.

from django.db import migrations


def chain_existing(apps, schema_editor):
    from oversight.audit_chain import GENESIS, record_hash

    AuditRecord = apps.get_model("oversight", "AuditRecord")
    db = schema_editor.connection.alias
    prev_hash = GENESIS
    records = AuditRecord.objects.using(db).select_related("actor").order_by("id")
    for seq, r in enumerate(records.iterator(chunk_size=2000), start=1):
        fields = {
            "seq": seq,
            "at": r.at,
            "actor_id": r.actor_id,
            "actor_username": r.actor.username if r.actor is not None else "",
            "actor_role": r.actor_role,
            "action": r.action,
            "object_type": r.object_type,
            "object_id": r.object_id,
            "before": r.before,
            "after": r.after,
            "reason": r.reason,
            "request_id": r.request_id,
            "prev_hash": prev_hash,
        }
        digest = record_hash(fields)
        AuditRecord.objects.using(db).filter(pk=r.pk).update(
            seq=seq, actor_username=fields["actor_username"], prev_hash=prev_hash, hash=digest
        )
        prev_hash = digest


class Migration(migrations.Migration):
    dependencies = [
        ("oversight", "0002_auditrecord_chain_fields"),
    ]

    operations = [
        migrations.RunPython(chain_existing, migrations.RunPython.noop),
    ]
