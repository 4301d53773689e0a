"""URLs of the dashboard (namespace ``web``), mounted at the site root."""

from django.urls import path

from layerlab.web.views import (
    auth,
    compare,
    datasets,
    gallery,
    journal,
    newrun,
    pipelines,
    predict,
    projects,
    run_actions,
    runs,
    sweeps,
)

app_name = "web"

urlpatterns = [
    path("", runs.runs_list, name="runs"),
    path("signin/", auth.SignInView.as_view(), name="login"),
    path("signout/", auth.SignOutView.as_view(), name="logout"),
    path("runs/new/", newrun.run_new, name="run-new"),
    path("runs/new/shapes/", newrun.shape_check, name="run-shapes"),
    path("runs/<int:run_id>/", runs.run_detail, name="run"),
    path("runs/<int:run_id>/cancel/", run_actions.run_cancel, name="run-cancel"),
    path("runs/<int:run_id>/resume/", run_actions.run_resume, name="run-resume"),
    path("runs/<int:run_id>/fine-tune/", run_actions.run_finetune, name="run-finetune"),
    path("runs/<int:run_id>/delete/", run_actions.run_delete, name="run-delete"),
    path("runs/<int:run_id>/rename/", run_actions.run_rename, name="run-rename"),
    path("runs/<int:run_id>/tags/", run_actions.run_tags, name="run-tags"),
    path("runs/<int:run_id>/misclassified/", gallery.run_misclassified_cell, name="run-misclassified"),
    path("runs/<int:run_id>/export/", run_actions.run_export, name="run-export"),
    path("runs/<int:run_id>/predict/", predict.run_predict, name="predict"),
    path(
        "runs/<int:run_id>/checkpoints/<int:checkpoint_id>/",
        run_actions.checkpoint_download,
        name="checkpoint",
    ),
    path("compare/", compare.compare, name="compare"),
    path("datasets/", datasets.datasets_list, name="datasets"),
    path("datasets/upload/", datasets.dataset_upload_page, name="dataset-upload"),
    path("datasets/<int:dataset_id>/", datasets.dataset_detail, name="dataset"),
    path("pipelines/", pipelines.pipelines_list, name="pipelines"),
    path("pipelines/<int:pipeline_id>/", pipelines.pipeline_detail, name="pipeline"),
    path("sweeps/", sweeps.sweeps_list, name="sweeps"),
    path("sweeps/<int:sweep_id>/", sweeps.sweep_detail, name="sweep"),
    path("journal/", journal.journal, name="journal"),
    path("journal/new/", journal.entry_new, name="entry-new"),
    path("journal/<int:entry_id>/edit/", journal.entry_edit, name="entry-edit"),
    path("journal/preview/", journal.entry_preview, name="entry-preview"),
    path("journal/images/<int:image_id>/", journal.entry_image, name="entry-image"),
    path("projects/", projects.projects_list, name="projects"),
    path("projects/new/", projects.project_new, name="project-new"),
    path("projects/<int:project_id>/", projects.project_detail, name="project"),
    path("projects/<int:project_id>/share/", projects.project_share, name="project-share"),
    path("projects/<int:project_id>/unshare/", projects.project_unshare, name="project-unshare"),
    path("projects/<int:project_id>/members/", projects.project_member_add, name="project-member-add"),
    path(
        "projects/<int:project_id>/members/remove/",
        projects.project_member_remove,
        name="project-member-remove",
    ),
]
