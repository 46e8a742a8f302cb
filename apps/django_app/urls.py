from django.urls import path

from notes import views

urlpatterns = [
    path("", views.index, name="index"),
    path("hello/<str:name>", views.hello),
    path("form", views.form),
    path("old", views.old),
    path("page", views.page),
    path("notes", views.add_note),
    path("notes/<int:note_id>", views.show_note),
]
