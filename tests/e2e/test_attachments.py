"""Attachments in a real browser: paste an image into the comment box, see the Markdown link
arrive once the upload is done, post the comment and see the image drawn; pick a file."""

from __future__ import annotations

import base64
import re

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from app.models import User
from tests.e2e.conftest import LiveServer, screenshot_path
from tests.e2e.test_tracker import log_in, make_account, watch_for_problems
from tests.factories import make_issue, make_project, png_bytes

pytestmark = pytest.mark.browser

PASTE_IMAGE = """
async ([base64, name]) => {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const file = new File([bytes], name, { type: "image/png" });
  const data = new DataTransfer();
  data.items.add(file);
  const box = document.getElementById("new-comment");
  box.focus();
  const paste = { clipboardData: data, bubbles: true, cancelable: true };
  box.dispatchEvent(new ClipboardEvent("paste", paste));
}
"""


async def make_issue_for(server: LiveServer, email: str) -> None:
    async with server.app.extensions["database"].sessionmaker() as session:
        ann = await session.scalar(select(User).where(User.email == email))
        session.expunge(ann)
        project = await make_project(session, ann, key="WEB")
        await make_issue(session, ann, project, title="The logo is blurry")


async def test_paste_an_image_into_a_comment_and_see_it_rendered(
    page: Page, live_server: LiveServer, backend: str
) -> None:
    problems = watch_for_problems(page)
    await make_account(live_server, "ann@example.com", "Ann Example")
    await make_issue_for(live_server, "ann@example.com")
    await log_in(page, live_server, "ann@example.com")
    await page.goto(live_server.url + "/WEB-1")
    await page.get_by_label("Add a comment").fill("Here is what I see: ")

    # Every text the status line shows while the upload runs.
    await page.evaluate(
        """() => {
          window.statusSeen = [];
          const line = document.querySelector("#attachments .upload-status");
          new MutationObserver(() => window.statusSeen.push(line.textContent))
            .observe(line, { childList: true, characterData: true, subtree: true });
        }"""
    )
    image = base64.b64encode(png_bytes(240, 120, "#dc2626")).decode()
    await page.evaluate(PASTE_IMAGE, [image, "pasted.png"])
    box = page.get_by_label("Add a comment")
    await expect(box).to_have_value(
        re.compile(r"^Here is what I see: !\[pasted\.png\]\(/attachments/\d+\)$")
    )
    await expect(page.locator(".upload-status")).to_have_text("Uploaded pasted.png.")
    seen = await page.evaluate("window.statusSeen")
    assert any(text.startswith("Uploading pasted.png") for text in seen), seen
    # The section lists it with its thumbnail, drawn.
    thumbnail = page.locator("#attachments .attachment-preview img")
    await expect(thumbnail).to_be_visible()

    await page.get_by_role("button", name="Comment", exact=True).click()
    drawn = page.locator(".timeline-comment .markdown img[alt='pasted.png']")
    await expect(drawn).to_be_visible()
    width = await drawn.evaluate("(img) => img.complete ? img.naturalWidth : 0")
    assert width == 240  # the file itself came back and the browser decoded it
    await page.screenshot(
        path=str(screenshot_path(f"attachments-pasted-{backend}")), full_page=True
    )
    assert problems == []


async def test_pick_a_file_and_see_it_listed_as_a_download(
    page: Page, live_server: LiveServer, backend: str
) -> None:
    await make_account(live_server, "ann@example.com", "Ann Example")
    await make_issue_for(live_server, "ann@example.com")
    await log_in(page, live_server, "ann@example.com")
    await page.goto(live_server.url + "/WEB-1")
    await page.locator("[data-attachment-picker]").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/html", "buffer": b"<b>plain notes</b>\n"}]
    )
    await expect(page.locator(".upload-status")).to_have_text("Uploaded notes.txt.")
    link = page.locator("#attachments a.attachment-name", has_text="notes.txt")
    await expect(link).to_have_attribute("download", "")
    await expect(page.locator("#attachments")).to_contain_text("text/plain")


DROP_FILE = """
([text, name]) => {
  const data = new DataTransfer();
  data.items.add(new File([text], name, { type: "application/pdf" }));
  const target = document.querySelector(".issue-side");
  for (const type of ["dragover", "drop"]) {
    const init = { dataTransfer: data, bubbles: true, cancelable: true };
    target.dispatchEvent(new DragEvent(type, init));
  }
}
"""


async def test_drop_a_file_onto_the_page(page: Page, live_server: LiveServer, backend: str) -> None:
    await make_account(live_server, "ann@example.com", "Ann Example")
    await make_issue_for(live_server, "ann@example.com")
    await log_in(page, live_server, "ann@example.com")
    await page.goto(live_server.url + "/WEB-1")
    await page.evaluate(DROP_FILE, ["%PDF-1.4\n%%EOF\n", "spec.pdf"])
    await expect(page.locator(".upload-status")).to_have_text("Uploaded spec.pdf.")
    link = page.locator("#attachments a.attachment-name", has_text="spec.pdf")
    await expect(link).to_have_attribute("target", "_blank")  # a PDF opens in the browser
    await expect(page.locator("#attachments")).to_contain_text("application/pdf")
