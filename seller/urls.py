from django.urls import path, re_path

from . import views

app_name = "seller"


def shoot(suffix: str, view, name: str):
    """A page or action of one of the seller's shoots (the view looks the shoot up by seller)."""
    return path(f"shoots/<int:shoot_id>/{suffix}", view, name=name)


def photo(suffix: str, view, name: str):
    return shoot(f"photos/<int:photo_id>/{suffix}", view, name)


def asset(suffix: str, view, name: str):
    return shoot(f"assets/<int:asset_id>/{suffix}", view, name)


def files(of: str, variants: str, view, name: str):
    """The files of a photo or an asset, e.g. ``shoots/1/photos/2/thumb``."""
    pattern = rf"^shoots/(?P<shoot_id>[0-9]+)/{of}s/(?P<{of}_id>[0-9]+)/(?P<variant>{variants})$"
    return re_path(pattern, view, name=name)


urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("shoots/new/", views.shoot_new, name="shoot_new"),
    shoot("", views.shoot_detail, "shoot"),
    shoot("status/", views.shoot_status, "shoot_status"),
    shoot("retry-analysis/", views.shoot_retry_analysis, "retry_analysis"),
    shoot("rerun-analysis/", views.shoot_rerun, "rerun_analysis"),
    shoot("standard-pose/", views.shoot_standard_pose, "standard_pose"),
    shoot("mask/", views.mask_review, "mask_review"),
    shoot("mask/confirm/", views.mask_confirm, "mask_confirm"),
    photo("correct/", views.mask_correct, "mask_correct"),
    photo("mask-panel/", views.mask_panel, "mask_panel"),
    photo("choose-mask/", views.mask_choose, "mask_choose"),
    shoot("faces/", views.face_selection, "faces"),
    shoot("retry-generation/", views.shoot_retry_generation_view, "retry_generation"),
    shoot("cancel-generation/", views.shoot_cancel_generation, "cancel_generation"),
    shoot("regenerate/", views.shoot_regenerate, "regenerate"),
    shoot("results/", views.results, "results"),
    shoot("send-to-qa/", views.shoot_send_to_qa_view, "send_to_qa"),
    asset("", views.asset_detail, "asset"),
    asset("approve/", views.asset_approve, "asset_approve"),
    asset("reject/", views.asset_reject, "asset_reject"),
    asset("rate/", views.asset_rate_view, "asset_rate"),
    # files: always looked up through the signed-in seller's own shoots
    files("photo", "image|thumb|original", views.photo_file, "photo_file"),
    path("faces/<int:face_id>/thumb", views.face_thumb, name="face_thumb"),
    shoot("masks/<int:mask_id>.png", views.mask_file, "mask_file"),
    shoot("poses/<int:analysis_id>.png", views.pose_file, "pose_file"),
    files("asset", "file|thumb|poster", views.asset_file, "asset_file"),
]
