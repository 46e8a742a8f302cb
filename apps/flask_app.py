"""A Flask app, unmodified, served from Debian's python3-flask under Pyodide's Python 3.12,
or in four parallel subinterpreters of the project-built CPython 3.13 (see the README):

    apt-get install python3-flask
    npx interpool serve /flask=apps/flask_app.py:app --python 3.12 --python-path /usr/lib/python3/dist-packages
    npx interpool serve /flask=apps/flask_app.py:app --python native --cpython .cpython/3.13/bin/python3.13 \\
        --python-path /usr/lib/python3/dist-packages --workers 4
"""
from flask import Flask, jsonify, redirect, render_template_string, request, url_for

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask!\n"


@app.get("/hello/<name>")
def hello(name):
    return jsonify(greeting=f"Hello, {name}!", visits=int(request.cookies.get("visits", 0)))


@app.post("/form")
def form():
    response = jsonify(name=request.form.get("name"), fields=sorted(request.form))
    response.set_cookie("visits", "1")
    return response


@app.get("/old")
def old():
    return redirect(url_for("index"))


@app.get("/page")
def page():
    return render_template_string("<!doctype html>\n<h1>Hello, {{ name }}!</h1>\n", name=request.args.get("name", "world"))
