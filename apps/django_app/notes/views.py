from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from notes.models import Note


@require_GET
def index(request):
    return HttpResponse("Hello from Django!\n", content_type="text/plain")


@require_GET
def hello(request, name):
    return JsonResponse({"greeting": f"Hello, {name}!", "visits": int(request.COOKIES.get("visits", 0))})


@require_POST
def form(request):
    response = JsonResponse({"name": request.POST.get("name"), "fields": sorted(request.POST)})
    response.set_cookie("visits", "1")
    return response


@require_GET
def old(request):
    return redirect("index")


@require_GET
def page(request):
    return render(request, "notes/page.html", {"name": request.GET.get("name", "world"), "count": Note.objects.count()})


@require_POST
def add_note(request):
    note = Note.objects.create(text=request.POST["text"])
    return JsonResponse({"id": note.id, "text": note.text, "count": Note.objects.count()}, status=201)


@require_GET
def show_note(request, note_id):
    note = get_object_or_404(Note, pk=note_id)
    return JsonResponse({"id": note.id, "text": note.text})
