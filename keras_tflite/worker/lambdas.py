"""Lambda layers, rebuilt in the conversion worker with the global names their code reads.

Keras saves a Lambda's Python function as bytecode, but not the globals it reads (`keras`,
`ops`, `tf`, `np`, a constant, a helper function). The worker rebuilds the model from its saved
file, so there the function fails with NameError, which Keras reports as "could not infer the
shape of the Lambda's output". So the training process records where each global of each
Lambda function comes from - a module, an importable object, a plain value, or a function
defined in the training script (shipped as bytecode, like Keras ships the lambda itself) - and
the worker provides them before Keras rebuilds the layer. What cannot be shipped is refused
before training, naming the layer and the name.
"""

from __future__ import annotations

import base64
import builtins
import dis
import importlib
import marshal
import sys
import types
from typing import Any

from keras_tflite.specs import walk_layers

_PLAIN = (bool, int, float, str, type(None))


def environment(model: Any) -> dict[str, dict[str, Any]]:
    """How to rebuild every global name the model's Lambda functions read, by name.

    Raises:
        ValueError: naming the Lambda layer and the global that cannot be rebuilt elsewhere.
    """
    found: dict[str, dict[str, Any]] = {}
    for layer in walk_layers(model):
        if type(layer).__name__ != "Lambda":
            continue
        for attribute in ("function", "mask", "_output_shape"):
            function = getattr(layer, attribute, None)
            if isinstance(function, types.FunctionType):
                _collect(function, layer.name, found, top=True)
    return {name: {k: v for k, v in r.items() if k != "id"} for name, r in found.items()}


def _collect(function: types.FunctionType, layer: str, found: dict, *, top: bool = False) -> None:
    """Records how to rebuild `function`'s globals (and, for a named function Keras saves by
    module and name, the function itself when its module is the training script)."""
    if top and function.__name__ != "<lambda>":
        # Keras saves a named function by name only: the worker hands it over as a custom object.
        _record(function.__name__, function, layer, found)
        found[function.__name__]["custom_object"] = True
        return
    for name in sorted(_global_names(function.__code__)):
        if name in function.__globals__:  # else a builtin, or a name the code never reaches
            _record(name, function.__globals__[name], layer, found)
    for name, cell in zip(function.__code__.co_freevars, function.__closure__ or ()):
        if not isinstance(cell.cell_contents, _PLAIN):  # Keras saves closures as JSON values
            raise _unshippable(layer, name, cell.cell_contents, "the enclosing function")


def _record(name: str, value: Any, layer: str, found: dict) -> None:
    if name in found:
        if found[name]["id"] != id(value):
            raise ValueError(
                f"Expected the global name {name!r} to mean one thing in every Lambda layer. "
                f"Received two meanings (one in Lambda layer {layer!r}): rename one."
            )
        return
    found[name] = {"id": id(value)}  # before recursing: a function may call itself
    found[name] |= _recipe(value, layer, name, found)


def _recipe(value: Any, layer: str, name: str, found: dict) -> dict[str, Any]:
    if isinstance(value, types.ModuleType):
        return {"module": value.__name__}
    if isinstance(value, _PLAIN):
        return {"value": value}
    if _importable(value):
        return {"module": value.__module__, "attribute": value.__qualname__}
    if isinstance(value, types.FunctionType) and value.__closure__ is None:
        _collect(value, layer, found)  # its own globals travel too
        return {
            "code": base64.b64encode(marshal.dumps(value.__code__)).decode(),
            "defaults": list(value.__defaults__ or ()),
        }
    raise _unshippable(layer, name, value)


def _unshippable(layer: str, name: str, value: Any, source: str | None = None) -> ValueError:
    where = f"captured from {source}" if source else f"defined in {_where(value)}"
    return ValueError(
        f"Expected Lambda layer {layer!r} to read only modules, numbers, strings and functions "
        f"from its globals (and only numbers and strings from an enclosing function): the "
        "conversion worker rebuilds the model from its saved file. "
        f"Received: {name!r}, a {type(value).__qualname__} {where}. Replace "
        "the Lambda by a Layer subclass registered with "
        "@keras.saving.register_keras_serializable() in an importable module, or make "
        f"{name!r} a module-level constant or function."
    )


def _global_names(code: types.CodeType) -> set[str]:
    names = {
        i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")
    }
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):  # comprehensions, nested functions
            names |= _global_names(constant)
    return names - set(vars(builtins))


def _importable(value: Any) -> bool:
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        return False
    try:
        found = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return False
    return found is value


def _where(value: Any) -> str:
    module = getattr(value, "__module__", None) or getattr(type(value), "__module__", "")
    return "your script" if module == "__main__" else f"module {module!r}"


# ---- worker side --------------------------------------------------------------------------------


def install(recipes: dict[str, dict[str, Any]], framework: str) -> dict[str, Any]:
    """Puts the recorded globals where Keras and tf_keras look when they rebuild a Lambda
    function: its globals.

    Returns:
        The Lambda layers' named functions, for `custom_objects` (Keras saves a named function
        by name, and finds it there).
    """
    if not recipes:
        return {}
    namespace = vars(sys.modules["__main__"])
    for name, recipe in recipes.items():
        if "module" in recipe:
            namespace[name] = _imported(recipe)
        elif "value" in recipe:
            namespace[name] = recipe["value"]
    for name, recipe in recipes.items():  # functions last: their globals are the namespace
        if "code" in recipe:
            code = marshal.loads(base64.b64decode(recipe["code"]))
            defaults = tuple(recipe["defaults"]) or None
            namespace[name] = types.FunctionType(code, namespace, name, defaults)
    _lambdas_read(namespace, framework)
    return {name: namespace[name] for name, recipe in recipes.items() if "custom_object" in recipe}


def _imported(recipe: dict[str, Any]) -> Any:
    found = importlib.import_module(recipe["module"])
    for part in recipe["attribute"].split(".") if "attribute" in recipe else []:
        found = getattr(found, part)
    return found


def _lambdas_read(namespace: dict[str, Any], framework: str) -> None:
    """Keras 3 rebuilds a lambda with its own module's globals, tf_keras with those of its
    Lambda module (and of the function's module when imported): add ours to them, in this
    worker process only."""
    name = (
        "tf_keras.src.utils.generic_utils"
        if framework == "tf_keras"
        else ("keras.src.utils.python_utils")
    )
    module = importlib.import_module(name)
    original = module.func_load

    def func_load(code, defaults=None, closure=None, globs=None):
        globs = {**vars(module), **namespace} if globs is None else {**namespace, **globs}
        return original(code, defaults=defaults, closure=closure, globs=globs)

    module.func_load = func_load
