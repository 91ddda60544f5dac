"""ParentOrder.desk: the trader's desk when the order was entered. Orders from before the
field get their trader's desk now, the best there is: moves were refused while a trader had
open orders, so only ended orders can be on the wrong desk."""

from django.db import migrations, models


def backfill(apps, schema_editor):
    ParentOrder = apps.get_model("execution", "ParentOrder")
    DeskMembership = apps.get_model("oversight", "DeskMembership")
    for user_id, desk in DeskMembership.objects.values_list("user_id", "desk__name"):
        ParentOrder.objects.filter(owner_id=user_id).update(desk=desk)


class Migration(migrations.Migration):
    dependencies = [
        ("execution", "0015_control_request_clock_reason"),
        ("oversight", "0011_role_grant"),
    ]

    operations = [
        migrations.AddField(
            model_name="parentorder",
            name="desk",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
