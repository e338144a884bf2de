"""Playbooks get a purpose (risk or expansion), and the expansion playbooks are seeded (playbooks/defaults.py)."""


from django.db import migrations, models

from playbooks.defaults import expansion_playbooks_seed, expansion_playbooks_unseed


class Migration(migrations.Migration):

    dependencies = [
        ('playbooks', '0010_stripe_subscription_revenue'),
    ]

    operations = [
        migrations.AddField(
            model_name='playbook',
            name='purpose',
            field=models.CharField(choices=[('risk', 'Risk: a matched customer is at risk'), ('expansion', 'Expansion: a matched customer is growing')], default='risk', help_text='Risk playbooks put matched customers on the call list; expansion playbooks list them as expansion candidates on the Customers page and never raise a risk level.', max_length=16),
        ),
        migrations.AlterField(
            model_name='playbook',
            name='risk_level',
            field=models.CharField(choices=[('critical', 'Critical'), ('high', 'High'), ('medium', 'Medium')], help_text='A matched tenant is at risk at least at this level (ignored for an expansion playbook).', max_length=16),
        ),
        migrations.RunPython(expansion_playbooks_seed, expansion_playbooks_unseed),
    ]
