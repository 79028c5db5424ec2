"""Groups, on LocalBackend and on RemoteBackend over the real server alike: a group's list,
its cancel and delete (saying what they left), and its one zip."""

from __future__ import annotations

import zipfile

import pytest

from tests.conformance.test_backend_conformance import until_status
from veotui.core.errors import Conflict, InvalidRequest, JobNotFound
from veotui.core.job import Status


async def test_a_group_lists_its_jobs_in_the_order_they_were_queued(backend):
    members = [await backend.submit({"prompt": f"fox {n}", "group": "foxes"}) for n in range(3)]
    await backend.submit({"prompt": "not a fox", "group": "other"})
    await backend.submit({"prompt": "no group"})
    assert members[0].request.group == "foxes"
    listed = await backend.group_jobs("foxes")
    assert [j.job_id for j in listed] == [j.job_id for j in members]
    assert all(j.request.group == "foxes" for j in listed)
    with pytest.raises(JobNotFound, match="nobody"):
        await backend.group_jobs("nobody")


@pytest.mark.parametrize(
    ("group", "words"),
    [("x" * 65, "1 to 64"), ("a/b", "'/'"), ("bell\x07", "U+0007"), (7, "text")],
)
async def test_a_bad_group_name_is_refused_naming_the_field(backend, group, words):
    with pytest.raises(InvalidRequest, match="group") as caught:
        await backend.submit({"prompt": "p", "group": group})
    assert words in str(caught.value)


async def test_cancelling_a_group_cancels_what_is_not_over_and_says_what_it_left(backend_for, make_settings):
    async with backend_for(make_settings(sim_seconds=30)) as backend:
        done = await backend.submit({"prompt": "quick", "group": "g"})
        await backend.cancel(done.job_id)
        running, waiting = [await backend.submit({"prompt": f"long {n}", "group": "g"}) for n in range(2)]
        await until_status(backend, running.job_id, Status.GENERATING)
        action = await backend.cancel_group("g")
        assert sorted(action.done) == sorted([running.job_id, waiting.job_id])
        assert action.left == [(done.job_id, "already cancelled")]
        assert {(await backend.get(j.job_id)).status for j in (running, waiting)} == {Status.CANCELLED}


async def test_deleting_a_group_removes_every_job_and_its_folder(backend, settings):
    members = [await backend.submit({"prompt": f"take {n}", "group": "takes"}) for n in range(2)]
    keep = await backend.submit({"prompt": "kept"})
    action = await backend.delete_group("takes")
    assert sorted(action.done) == sorted(j.job_id for j in members) and action.left == []
    for job in members:
        with pytest.raises(JobNotFound):
            await backend.get(job.job_id)
        assert not (settings.jobs_dir / f"job_{job.job_id}").exists()
    assert (await backend.get(keep.job_id)).request.group is None
    with pytest.raises(JobNotFound):
        await backend.delete_group("takes")


async def test_a_group_downloads_as_one_zip_of_job_folders(backend_for, make_settings, tmp_path):
    async with backend_for(make_settings(auto_delete_after_download="off")) as backend:
        pair = await backend.submit({"prompt": "two", "number_of_videos": 2, "group": "zip ü"})
        with pytest.raises(Conflict, match="no job of group 'zip ü' has completed"):
            await backend.download_group("zip ü", tmp_path)
        one = await backend.submit({"prompt": "one", "group": "zip ü"})
        failed = await backend.submit({"prompt": "this will [fail]", "group": "zip ü"})
        for job in (pair, one):
            await until_status(backend, job.job_id, Status.COMPLETED)
        await until_status(backend, failed.job_id, Status.FAILED)
        path = await backend.download_group("zip ü", tmp_path / "out")
        assert path.name == "veotui_group_zip__.zip"
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None
            assert sorted(archive.namelist()) == sorted(
                [
                    f"{pair.job_id}/generated_video_1.mp4",
                    f"{pair.job_id}/generated_video_2.mp4",
                    f"{one.job_id}/generated_video_1.mp4",
                ]
            )
            sizes = {info.filename: info.file_size for info in archive.infolist()}
        finished = await backend.get(one.job_id)
        assert sizes[f"{one.job_id}/generated_video_1.mp4"] == finished.videos[0].size_bytes
        assert (await backend.get(one.job_id)).downloaded_at is not None
        assert not list(tmp_path.rglob(".partial-*"))
