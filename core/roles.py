"""Groups and the permissions each one gets. Applied after every migrate (see seller.apps)."""

from __future__ import annotations

SELLERS = "sellers"
QA_REVIEWERS = "qa_reviewers"
FACE_CURATORS = "face_curators"

#: group -> permissions as "app_label.codename"; permissions that do not exist yet are skipped
GROUP_PERMISSIONS: dict[str, list[str]] = {
    SELLERS: [],
    QA_REVIEWERS: [
        "generation.view_asset",
        "generation.view_generationjob",
        "seller.view_shoot",
        "qa.view_qareview",
        "qa.change_qareview",
        "qa.decide_qa",
        "qa.view_assetcheck",
        "qa.view_qasubmission",
        "qa.view_assetrating",
    ],
    FACE_CURATORS: [
        "facelibrary.view_face",
        "facelibrary.add_face",
        "facelibrary.change_face",
        "facelibrary.delete_face",
        "facelibrary.view_facereference",
        "facelibrary.add_facereference",
        "facelibrary.change_facereference",
        "facelibrary.delete_facereference",
        "facelibrary.view_consent",
        "facelibrary.add_consent",
        "facelibrary.change_consent",
    ],
}


def ensure_groups(**kwargs) -> None:
    from django.contrib.auth.models import Group, Permission

    for group_name, perms in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            found = Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            wanted.extend(found)
        group.permissions.add(*wanted)
