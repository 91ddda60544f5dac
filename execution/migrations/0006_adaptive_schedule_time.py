"""Adaptive orders placed before the `schedule` parameter existed worked around the time
curve. The parameter now defaults to `volume`; an order resumed by a worker gets its
stored parameters validated again, so without this it would switch curves mid-order,
which `schedule` (not amendable) must never do."""

from django.db import migrations


def pin_time(apps, schema_editor):  # type: ignore[no-untyped-def]
    ParentOrder = apps.get_model("execution", "ParentOrder")
    for order in ParentOrder.objects.filter(strategy="adaptive").only("id", "params"):
        params = order.params if isinstance(order.params, dict) else {}
        if "schedule" not in params:
            order.params = {**params, "schedule": "time"}
            order.save(update_fields=["params"])


class Migration(migrations.Migration):
    dependencies = [("execution", "0005_model_registry")]
    operations = [migrations.RunPython(pin_time, migrations.RunPython.noop)]
