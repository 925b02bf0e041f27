"""The text front-end record: stress dictionaries and the eSpeak NG version are pinned, and changes are named."""

import hashlib

from taco_jax.text.record import front_end_changes, front_end_record


def test_a_stress_dictionary_is_pinned_by_its_bytes_and_an_edit_is_reported(tmp_path):
    path = tmp_path / "stress.txt"
    path.write_text("замок|з+амок\n", encoding="utf-8")
    spec = f"russian_stress:{path}"
    record = front_end_record(["russian_cleaners", spec])
    assert record == {
        "cleaners": ["russian_cleaners", spec],
        "files": {spec: hashlib.sha256(path.read_bytes()).hexdigest()[:16]},
        "espeak_ng": None,
    }
    assert front_end_changes(record, ["russian_cleaners", spec]) == []
    path.write_text("замок|зам+ок\n", encoding="utf-8")
    (change,) = front_end_changes(record, ["russian_cleaners", spec])
    assert change.startswith(f"{spec}: the file changed since training")
    path.unlink()
    (change,) = front_end_changes(record, ["russian_cleaners", spec])
    assert "cannot read it" in change and record["files"][spec] in change


def test_phoneme_front_ends_record_the_espeak_version_and_other_cleaners_are_named():
    record = front_end_record(["english_cleaners", "espeak_ipa:en-us"])
    assert record["espeak_ng"].startswith("1.5")  # the espeakng-loader wheel ships 1.52
    assert front_end_changes(record, ["english_cleaners", "espeak_ipa:en-us"]) == []
    assert front_end_changes({**record, "espeak_ng": "1.49.0"}, ["english_cleaners", "espeak_ipa:en-us"]) == [
        f"eSpeak NG {record['espeak_ng']} phonemises, the model was trained with 1.49.0"
    ]
    (change,) = front_end_changes(record, ["espeak_ipa:en-us"])
    assert change.startswith("cleaners ['espeak_ipa:en-us'] differ")
    assert front_end_changes(None, ["english_cleaners"]) == []  # checkpoints from before the record
