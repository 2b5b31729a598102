"""The SavedModel op allow-list and `keras-zoo scan`, against the bypasses a deny-list let through.

Each hostile SavedModel below is built for real, given a forged ``keras_zoo.json`` whose sha256s
match (anyone can compute them), and must be refused by ``keras-zoo predict`` without ``--trust``
and named by ``keras-zoo scan``.
"""

import json
import os
import shutil

import numpy as np
import pytest

import keras
import tensorflow as tf

import keras_zoo
from keras_zoo import cli
from keras_zoo.export import export_model, load_export, scan
from keras_zoo.export.trust import (METADATA_FILE, UnsafeExportError, UntrustedExportError, allowed_ops,
                                    never_reason, op_types, record_files)

SPEC = tf.TensorSpec([None, 8, 8, 1], tf.float32, name="inputs")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model("mlp_lecture", input_shape=(8, 8, 1), num_classes=3)
    return export_model(model, str(tmp_path_factory.mktemp("served")), class_names=["a", "b", "c"])


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "x.png"
    Image.fromarray(np.zeros((8, 8), "uint8"), mode="L").save(path)
    return str(path)


def _forge_metadata(path):
    """Metadata with correct checksums, as an attacker could write it: provenance passes."""
    meta = {"model": "forged", "task": "classification", "input_shape": [8, 8, 1], "class_names": []}
    meta["files"] = record_files(path)
    os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
    with open(os.path.join(path, METADATA_FILE), "w") as f:
        json.dump(meta, f)
    return str(path)


def _probabilities(x):
    return {"probabilities": tf.nn.softmax(tf.reshape(x, [-1, 64])[:, :3])}


# --- the hostile SavedModels -------------------------------------------------------------------


def _nested_dataset(tmp):
    """serving_default rebuilds a dataset from a graph in a string constant: the graph reads a file
    and caches to a path; no op of the serving graph itself names a file."""
    secret = tmp / "secret.txt"
    secret.write_text("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n")
    dataset = tf.data.TextLineDataset(str(secret)).cache(str(tmp / "cache"))
    graph = tf.raw_ops.DatasetToGraphV2(input_dataset=dataset._variant_tensor).numpy()

    class Module(tf.Module):
        @tf.function(input_signature=[SPEC])
        def serve(self, inputs):
            # Chosen at run time (on the input's size) so that grappler does not fold it away.
            variant = tf.raw_ops.DatasetFromGraph(
                graph_def=tf.where(tf.size(inputs) >= 0, tf.constant(graph), tf.constant(b"")))
            lines = tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.string))
            line = lines.reduce(tf.constant(""), lambda text, line: text + line)  # reads it all: cached
            return _probabilities(inputs + tf.cast(tf.strings.length(line), tf.float32))

    return Module(), ["DatasetFromGraph", "TextLineDataset", "CacheDatasetV2"], ["cache*"]


def _print_to_file(tmp):
    class Module(tf.Module):
        @tf.function(input_signature=[SPEC])
        def serve(self, inputs):
            tf.print(inputs, output_stream=f"file://{tmp / 'printed.txt'}")
            return _probabilities(inputs)

    return Module(), ["PrintV2"], ["printed.txt"]


def _save_in_serving(op):
    def build(tmp):
        class Module(tf.Module):
            @tf.function(input_signature=[SPEC])
            def serve(self, inputs):
                if op == "SaveV2":
                    done = tf.raw_ops.SaveV2(prefix=str(tmp / "ckpt"), tensor_names=["x"],
                                             shape_and_slices=[""], tensors=[inputs])
                else:
                    done = tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=[str(tmp / "nothing")],
                                                         destination_prefix=str(tmp / "merged"))
                with tf.control_dependencies([done]):
                    return _probabilities(tf.identity(inputs))

        return Module(), [op], ["ckpt*"] if op == "SaveV2" else []

    return build


def _text_file_table(tmp):
    vocab = tmp / "vocab.txt"
    vocab.write_text("a\nb\nc\n")

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
                str(vocab), tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER), -1)

        @tf.function(input_signature=[SPEC])
        def serve(self, inputs):
            return _probabilities(inputs + tf.cast(self.table.lookup(tf.constant("b")), tf.float32))

    return Module(), ["InitializeTableFromTextFileV2"], []


def _legacy_reader(tmp):
    class Module(tf.Module):
        @tf.function(input_signature=[SPEC])
        def serve(self, inputs):
            reader = tf.raw_ops.WholeFileReaderV2()
            produced = tf.raw_ops.ReaderNumRecordsProducedV2(reader_handle=reader)
            return _probabilities(inputs + tf.cast(produced, tf.float32))

    return Module(), ["WholeFileReaderV2", "ReaderNumRecordsProducedV2"], []


HOSTILE = {"nested dataset graph": _nested_dataset, "PrintV2 to a file": _print_to_file,
           "SaveV2 in serving": _save_in_serving("SaveV2"),
           "MergeV2Checkpoints in serving": _save_in_serving("MergeV2Checkpoints"),
           "text-file table": _text_file_table, "legacy reader": _legacy_reader}


def _save(module, path):
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return str(path)


def _refused_by_predict_and_named_by_scan(path, ops, image, capsys):
    assert cli.main(["predict", path, image]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "refusing" in err and any(f"'{op}'" in err for op in ops), err
    assert cli.main(["scan", path]) == 1
    out = capsys.readouterr().out
    for op in ops:
        assert any(line.split()[:2] == ["refused", op] for line in out.splitlines()), (op, out)
    assert out.rstrip().endswith("verdict: refused")


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_savedmodels_are_refused_without_trust_and_named_by_scan(kind, tmp_path, image, capsys):
    module, ops, written = HOSTILE[kind](tmp_path)
    path = _forge_metadata(_save(module, tmp_path / "export"))
    _refused_by_predict_and_named_by_scan(path, ops, image, capsys)
    with pytest.raises(UnsafeExportError, match=rf"'({'|'.join(ops)})'"):
        load_export(path, trust=True)  # nothing lifts these
    assert not [p for pattern in written for p in tmp_path.glob(pattern)], "the refused graph ran"
    if written:  # the attack is real: TensorFlow itself runs the graph and the files appear
        tf.saved_model.load(path).signatures["serving_default"](inputs=tf.zeros([1, 8, 8, 1]))
        assert all(list(tmp_path.glob(pattern)) for pattern in written)


def test_saveV2_in_serving_stays_refused_when_the_files_saver_def_names_it(tmp_path, image, capsys):
    """The file's saver_def names the serving call as the saver and TensorFlow's own save and
    restore functions are dropped: the exemption follows from what the package knows, not the file."""
    from tensorflow.core.protobuf import saved_model_pb2

    module, ops, _ = _save_in_serving("SaveV2")(tmp_path)
    path = _save(module, tmp_path / "export")
    pb = os.path.join(path, "saved_model.pb")
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString(open(pb, "rb").read())
    meta = saved.meta_graphs[0]
    serving_call = next(n.name for n in meta.graph_def.node if n.op == "StatefulPartitionedCall"
                        and "signature_wrapper" in n.attr["f"].func.name)
    meta.saver_def.save_tensor_name = f"{serving_call}:0"
    meta.saver_def.restore_op_name = serving_call
    dropped = [f.signature.name for f in meta.graph_def.library.function if "_traced_" in f.signature.name]
    kept = [f for f in meta.graph_def.library.function if f.signature.name not in dropped]
    del meta.graph_def.library.function[:]
    meta.graph_def.library.function.extend(kept)
    kept_nodes = [n for n in meta.graph_def.node if n.attr["f"].func.name not in dropped]
    del meta.graph_def.node[:]
    meta.graph_def.node.extend(kept_nodes)
    open(pb, "wb").write(saved.SerializeToString())
    _forge_metadata(path)
    _refused_by_predict_and_named_by_scan(path, ops, image, capsys)
    # A function that takes the saver's name but is what the signature calls is no saver either.
    wrapper = next(f for f in meta.graph_def.library.function if f.signature.name.startswith("__inference_serve"))
    old_name, new_name = wrapper.signature.name, "__inference__traced_save_999"
    wrapper.signature.name = new_name
    for node in [*meta.graph_def.node, *(n for f in meta.graph_def.library.function for n in f.node_def)]:
        for value in node.attr.values():
            if value.HasField("func") and value.func.name == old_name:
                value.func.name = new_name
    for concrete in list(meta.object_graph_def.concrete_functions):
        if concrete == old_name:
            meta.object_graph_def.concrete_functions[new_name].CopyFrom(
                meta.object_graph_def.concrete_functions[old_name])
            del meta.object_graph_def.concrete_functions[old_name]
    for obj in meta.object_graph_def.nodes:
        if obj.WhichOneof("kind") == "function":
            names = [new_name if n == old_name else n for n in obj.function.concrete_functions]
            del obj.function.concrete_functions[:]
            obj.function.concrete_functions.extend(names)
        elif obj.WhichOneof("kind") == "bare_concrete_function" and \
                obj.bare_concrete_function.concrete_function_name == old_name:
            obj.bare_concrete_function.concrete_function_name = new_name
    open(pb, "wb").write(saved.SerializeToString())
    _forge_metadata(path)
    report = scan(path)
    assert report["verdict"] == "refused" and not report["problems"], report["problems"]
    assert [r["where"] for r in report["ops"] if r["op"] == "SaveV2"] == [[f"function '{new_name}'"]]


@pytest.mark.parametrize("beside", [False, True], ids=["pbtxt only", "pbtxt beside pb"])
def test_pbtxt_graphs_are_refused_always(exported, tmp_path, image, capsys, beside):
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString(open(copy / "saved_model.pb", "rb").read())
    (copy / "saved_model.pbtxt").write_text(text_format.MessageToString(saved))
    if not beside:
        os.unlink(copy / "saved_model.pb")
    _forge_metadata(str(copy))
    assert cli.main(["predict", str(copy), image]) == 2
    assert "saved_model.pbtxt, a graph format this checker does not parse" in capsys.readouterr().err
    assert cli.main(["scan", str(copy)]) == 1
    assert "saved_model.pbtxt" in capsys.readouterr().out
    with pytest.raises(UnsafeExportError, match="pbtxt"):
        load_export(str(copy), trust=True)


def test_unknown_ops_need_trust_and_scan_says_so(tmp_path, image, capsys):
    class Module(tf.Module):
        @tf.function(input_signature=[SPEC])
        def serve(self, inputs):
            return _probabilities(tf.math.lgamma(inputs + 1.0))  # Lgamma: in no keras_zoo export

    path = _forge_metadata(_save(Module(), tmp_path / "export"))
    assert "Lgamma" not in allowed_ops()["ops"]
    with pytest.raises(UntrustedExportError, match=r"'Lgamma'.*never contain.*trust=True"):
        load_export(path)
    load_export(path, trust=True)
    report = scan(path)
    assert report["verdict"] == "needs trust"
    assert [r["op"] for r in report["ops"] if r["status"] == "unknown"] == ["Lgamma"]
    assert scan(path, trust=True)["verdict"] == "safe"
    assert cli.main(["scan", path, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "needs trust"


def test_an_export_is_safe_for_scan_and_its_ops_are_all_in_the_table(exported, capsys):
    table = allowed_ops()
    assert not [op for op in table["ops"] if never_reason(op)]  # the table allows no refused op
    assert set(op_types(exported)) <= table["ops"] | table["saver_ops"]
    assert cli.main(["scan", exported]) == 0
    out = capsys.readouterr().out
    assert "verdict: safe" in out and "every file matches" in out


# --- ONNX and LiteRT files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def portable(tmp_path_factory):
    """{format: version folder} of one small classifier exported as ONNX and LiteRT."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("ai_edge_litert")
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model("mlp_lecture", input_shape=(8, 8, 1), num_classes=3)
    root = str(tmp_path_factory.mktemp("portable"))
    return {fmt: export_model(model, root, class_names=["a", "b", "c"], format=fmt) for fmt in ("onnx", "litert")}


@pytest.mark.parametrize("fmt, file", [("onnx", "model.onnx"), ("litert", "model.tflite")])
def test_changed_added_or_missing_files_of_onnx_and_litert_exports_need_trust(portable, fmt, file, tmp_path,
                                                                            image, capsys):
    from keras_zoo.export import formats

    meta = json.loads(open(os.path.join(portable[fmt], "keras_zoo.json")).read())
    assert sorted(meta["files"]) == sorted(["class_names.txt", file])
    assert cli.main(["predict", portable[fmt], image]) == 0 and cli.main(["scan", portable[fmt]]) == 0
    capsys.readouterr()
    for damage in ("byte", "added", "missing"):
        copy = tmp_path / damage
        shutil.copytree(portable[fmt], copy)
        if damage == "byte":  # one byte of the weights' region changed: the file still parses
            data = bytearray((copy / file).read_bytes())
            data[len(data) // 2] ^= 0x01
            (copy / file).write_bytes(bytes(data))
            expected = f"{file} does not match the sha256"
        elif damage == "added":
            (copy / "extra.bin").write_bytes(b"x")
            expected = "extra.bin"
        else:
            os.unlink(copy / "class_names.txt")
            expected = "class_names.txt"
        assert cli.main(["predict", str(copy / file), image]) == 2, damage
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and expected in err and "--trust" in err, err
        assert scan(str(copy))["verdict"] == "needs trust"
    assert cli.main(["predict", str(tmp_path / "added" / file), image, "--trust"]) == 0  # --trust honoured
    assert capsys.readouterr().out.startswith(image)
    # Without keras_zoo.json the file needs trust, and its inputs are still checked (from the file).
    os.unlink(tmp_path / "added" / "keras_zoo.json")
    with pytest.raises(UntrustedExportError, match="no readable keras_zoo metadata"):
        formats.load(str(tmp_path / "added" / file))
    runner = formats.load(str(tmp_path / "added" / file), trust=True)
    with pytest.raises(ValueError, match=r"is float32 \(1, 8, 8, 1\); expected uint8"):
        runner(inputs=np.zeros((1, 8, 8, 1), "float32"))


def test_onnx_custom_domains_and_outside_external_data_are_refused_always(portable, tmp_path, capsys):
    import onnx
    import onnxruntime as ort

    from keras_zoo.export import formats
    from keras_zoo.export.portable import UnsafeModelFileError

    source = os.path.join(portable["onnx"], "model.onnx")
    custom = tmp_path / "custom"
    shutil.copytree(portable["onnx"], custom)
    model = onnx.load(source)
    model.graph.node[0].domain = "org.evil"
    model.opset_import.add(domain="org.evil", version=1)
    onnx.save(model, str(custom / "model.onnx"))
    with pytest.raises(UnsafeModelFileError, match=r"custom-op domain 'org.evil'"):
        formats.load(str(custom), trust=True)
    assert cli.main(["scan", str(custom)]) == 1
    assert "refused  org.evil::" in capsys.readouterr().out

    outside = tmp_path / "outside"
    shutil.copytree(portable["onnx"], outside)
    model = onnx.load(source)
    tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data) or t.ByteSize())
    (tmp_path / "stolen.bin").write_bytes(onnx.numpy_helper.to_array(tensor).tobytes())
    tensor.external_data.add(key="location", value="../stolen.bin")
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    (outside / "model.onnx").write_bytes(model.SerializeToString())  # onnx.save refuses to write it
    with pytest.raises(UnsafeModelFileError, match=r"external data outside the model's folder") as err:
        formats.load(str(outside), trust=True)
    assert "\n" not in str(err.value) and "../stolen.bin" in str(err.value)
    # onnxruntime refuses it too today; the package does not depend on that.
    with pytest.raises(Exception, match="(?i)outside|escapes|external data"):
        ort.InferenceSession(str(outside / "model.onnx"), providers=["CPUExecutionProvider"])


def test_litert_custom_operators_are_refused_always(portable, tmp_path, capsys):
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from keras_zoo.export import formats
    from keras_zoo.export.portable import UnsafeModelFileError

    copy = tmp_path / "custom"
    shutil.copytree(portable["litert"], copy)
    model = schema.ModelT.InitFromPackedBuf((copy / "model.tflite").read_bytes(), 0)
    code = model.operatorCodes[0]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = "FlexReadFile"  # a TensorFlow op through the Flex delegate
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    (copy / "model.tflite").write_bytes(bytes(builder.Output()))
    with pytest.raises(UnsafeModelFileError, match=r"custom:FlexReadFile .* custom operator"):
        formats.load(str(copy), trust=True)
    assert cli.main(["scan", str(copy / "model.tflite")]) == 1
    assert "refused  custom:FlexReadFile" in capsys.readouterr().out
