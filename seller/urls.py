from django.urls import path, re_path

from . import views

app_name = "seller"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("shoots/new/", views.shoot_new, name="shoot_new"),
    path("shoots/<int:shoot_id>/", views.shoot_detail, name="shoot"),
    path("shoots/<int:shoot_id>/status/", views.shoot_status, name="shoot_status"),
    path(
        "shoots/<int:shoot_id>/retry-analysis/",
        views.shoot_retry_analysis,
        name="retry_analysis",
    ),
    path("shoots/<int:shoot_id>/rerun-analysis/", views.shoot_rerun, name="rerun_analysis"),
    path("shoots/<int:shoot_id>/standard-pose/", views.shoot_standard_pose, name="standard_pose"),
    path("shoots/<int:shoot_id>/mask/", views.mask_review, name="mask_review"),
    path("shoots/<int:shoot_id>/mask/confirm/", views.mask_confirm, name="mask_confirm"),
    path(
        "shoots/<int:shoot_id>/photos/<int:photo_id>/correct/",
        views.mask_correct,
        name="mask_correct",
    ),
    path(
        "shoots/<int:shoot_id>/photos/<int:photo_id>/choose-mask/",
        views.mask_choose,
        name="mask_choose",
    ),
    path("shoots/<int:shoot_id>/faces/", views.face_selection, name="faces"),
    path(
        "shoots/<int:shoot_id>/retry-generation/",
        views.shoot_retry_generation_view,
        name="retry_generation",
    ),
    path(
        "shoots/<int:shoot_id>/cancel-generation/",
        views.shoot_cancel_generation,
        name="cancel_generation",
    ),
    path("shoots/<int:shoot_id>/regenerate/", views.shoot_regenerate, name="regenerate"),
    path("shoots/<int:shoot_id>/results/", views.results, name="results"),
    path("shoots/<int:shoot_id>/send-to-qa/", views.shoot_send_to_qa_view, name="send_to_qa"),
    path("shoots/<int:shoot_id>/assets/<int:asset_id>/", views.asset_detail, name="asset"),
    path(
        "shoots/<int:shoot_id>/assets/<int:asset_id>/approve/",
        views.asset_approve,
        name="asset_approve",
    ),
    path(
        "shoots/<int:shoot_id>/assets/<int:asset_id>/reject/",
        views.asset_reject,
        name="asset_reject",
    ),
    # files: always looked up through the signed-in seller's own shoots
    re_path(
        r"^shoots/(?P<shoot_id>[0-9]+)/photos/(?P<photo_id>[0-9]+)/"
        r"(?P<variant>image|thumb|original)$",
        views.photo_file,
        name="photo_file",
    ),
    path("faces/<int:face_id>/thumb", views.face_thumb, name="face_thumb"),
    path("shoots/<int:shoot_id>/masks/<int:mask_id>.png", views.mask_file, name="mask_file"),
    path("shoots/<int:shoot_id>/poses/<int:analysis_id>.png", views.pose_file, name="pose_file"),
    re_path(
        r"^shoots/(?P<shoot_id>[0-9]+)/assets/(?P<asset_id>[0-9]+)/"
        r"(?P<variant>file|thumb|poster)$",
        views.asset_file,
        name="asset_file",
    ),
]
