"""Remote execution in the portal: registered scripts (list, register, new versions, disable),
agents (status, labels, the scripts they hold against the server's hashes) and jobs (history
with filters, detail with outputs).

Reads come from dashboard.script_selectors and remediation.selectors; every change goes through
remediation.services, the functions ``/v2/scripts`` calls, after the API's own serializers.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views import View

from dashboard import script_selectors as ssel
from dashboard.permissions import RoleRequiredMixin
from dashboard.script_forms import ScriptForm
from dashboard.views.base import CreatedDays, FormPage, Page, actor, paginate
from medic.errors import MedicError
from remediation import selectors, services
from remediation.models import JobState
from remediation.secrets.selectors import secrets_mask, secrets_masker

# --- Scripts ----------------------------------------------------------------------------------


class ScriptFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=128, label="Name or description")
    where = forms.ChoiceField(
        required=False,
        label="Runs",
        choices=[("", "anywhere"), ("local", "on the Medic worker"), ("agents", "on agents")],
    )


class ScriptList(Page):
    template_name = "dashboard/scripts/list.html"
    title = "Scripts"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = ScriptFilterForm(self.request.GET or None)
        filters = {}
        if form.is_valid():
            filters = {k: v for k, v in form.cleaned_data.items() if v}
        context.update(
            form=form,
            page=paginate(self.request, ssel.script_rows(**filters)),
            filtered=bool(filters),
            now=timezone.now(),
        )
        return context


class ScriptDetail(Page):
    template_name = "dashboard/scripts/detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        script = selectors.script_get(kwargs["name"])
        versions = list(ssel.script_versions(script)[:100])
        current = script.versions.get(version=script.current_version)
        context.update(
            title=f"Script {script.name}",
            script=script,
            current=current,
            versions=versions,
            holders=ssel.script_holders(current),
            jobs=ssel.script_recent_jobs(script),
            now=timezone.now(),
        )
        return context


class ScriptEdit(FormPage):
    """Register a script (no name in the URL) or write the next version of one."""

    template_name = "dashboard/scripts/form.html"

    def get_object(self):
        name = self.kwargs.get("name")
        return selectors.script_get(name) if name else None

    def make_form(self, data=None):
        version = None
        if self.object is not None:
            version = self.object.versions.get(version=self.object.current_version)
        return ScriptForm(data, version=version)

    def save(self, form):
        data = form.cleaned_data
        spec = {k: data[k] for k in services.SPEC_FIELDS if k in data}
        if self.object is None:
            return services.script_create(name=data["name"], actor=actor(self.request), **spec)
        return services.script_update(name=self.object.name, actor=actor(self.request), **spec)

    def success(self, version):
        if self.object is None:
            messages.success(self.request, f"Registered {version.script.name} (version 1).")
        elif version.version != self.object.current_version:
            messages.success(self.request, f"Saved version {version.version}.")
        else:
            messages.info(self.request, "Nothing changed: no new version.")
        return redirect("dashboard:script", version.script.name)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if self.object is None:
            context.update(
                title="Register a script", submit_label="Register", cancel_url=_url("scripts")
            )
        else:
            context.update(
                title=f"New version of {self.object.name}",
                submit_label="Save new version",
                cancel_url=_url("script", self.object.name),
                intro="Saving writes the next version (the current one stays, and jobs keep "
                "pointing at the version they ran).",
            )
        return context


class ScriptDisable(RoleRequiredMixin, View):
    http_method_names = ["post"]
    needs_write_to_read = True

    def post(self, request, name: str):
        try:
            services.script_disable(name=name, actor=actor(request))
        except MedicError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Disabled {name}: runs are refused until a new version.")
        return redirect("dashboard:script", name)


def _url(name: str, *args) -> str:
    return reverse(f"dashboard:{name}", args=args)


# --- Agents -----------------------------------------------------------------------------------


class AgentList(Page):
    template_name = "dashboard/agents/list.html"
    title = "Agents"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        page = paginate(self.request, ssel.agent_rows())
        ssel.agent_facts(list(page.object_list))
        context.update(page=page, now=timezone.now())
        return context


class AgentDetail(Page):
    template_name = "dashboard/agents/detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        agent = selectors.agent_get(kwargs["name"])
        ssel.agent_facts([agent])
        held = {h.name for h in agent.held}
        context.update(
            title=f"Agent {agent.name}",
            agent=agent,
            missing=[v for v in selectors.scripts_expected_on(agent) if v.script.name not in held],
            jobs=ssel.agent_recent_jobs(agent),
            now=timezone.now(),
        )
        return context


# --- Jobs -------------------------------------------------------------------------------------


class JobFilterForm(CreatedDays):
    script = forms.CharField(required=False, max_length=128)
    agent = forms.CharField(required=False, max_length=100)
    state = forms.ChoiceField(required=False, choices=[("", "any state"), *JobState.choices])


class JobList(Page):
    template_name = "dashboard/jobs/list.html"
    title = "Jobs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = JobFilterForm(self.request.GET or None)
        filters: dict = {}
        if form.is_valid():
            data = form.cleaned_data
            filters = {k: data[k] for k in ("script", "agent", "state") if data[k]}
            filters.update(form.created_range())
        context.update(
            form=form,
            page=paginate(self.request, ssel.job_rows(**filters)),
            filtered=bool(filters),
            choices=ssel.job_filter_choices(),
            now=timezone.now(),
        )
        return context


class JobDetail(Page):
    template_name = "dashboard/jobs/detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        job = selectors.job_get(kwargs["job_id"])
        # Outputs were masked when stored; masked again here for a secret stored since.
        context.update(
            title=f"Job {job.pk}",
            job=job,
            args=secrets_masker()(job.args),
            stdout=secrets_mask(job.stdout_tail),
            stderr=secrets_mask(job.stderr_tail),
            now=timezone.now(),
        )
        return context
