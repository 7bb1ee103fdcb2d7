import json

from challenge import contract


def test_input_and_output_paths_follow_grand_challenge():
    assert str(contract.input_image_path("abc")) == "/input/images/sagittal-spine-mri/abc.mha"
    assert str(contract.INPUTS_JSON) == "/input/inputs.json"
    assert str(contract.OUTPUT_FOLDER) == "/output/images/sagittal-spine-mr-segmentation"


def test_inputs_json_lists_the_image_socket():
    document = contract.inputs_json("1234", image_name="3_t2.mha")
    json.dumps(document)  # serialisable as written into the container
    (entry,) = document
    assert entry["interface"]["slug"] == "sagittal-spine-mri"
    assert entry["interface"]["relative_path"] == "images/sagittal-spine-mri"
    assert entry["image"] == {"pk": "1234", "name": "3_t2.mha"}


def test_inputs_json_has_the_platforms_current_shape():
    """Since Dec 2025 the socket is under `socket` and under `interface` (same object), with a value pk."""
    (entry,) = contract.inputs_json("a1b2c3d4-0000-4000-8000-000000000001", image_name="x.mha")
    assert set(entry) == {"socket", "interface", "image", "file", "value", "pk"}
    assert entry["socket"] == entry["interface"]
    assert set(entry["socket"]) == {"title", "description", "slug", "kind", "pk", "default_value", "super_kind",
                                    "relative_path", "overlay_segments", "look_up_table"}
    assert entry["socket"]["kind"] == "Image" and entry["socket"]["super_kind"] == "Image"
    assert isinstance(entry["pk"], int) and entry["pk"] > 0
    assert entry["pk"] == contract.inputs_json("a1b2c3d4-0000-4000-8000-000000000001", image_name="x.mha")[0]["pk"]


def test_description_names_both_folders():
    text = contract.describe()
    assert "/input/images/sagittal-spine-mri" in text and "/output/images/sagittal-spine-mr-segmentation" in text
