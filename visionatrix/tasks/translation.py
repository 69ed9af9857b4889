"""The LLM's part in creating tasks: prompt translation (as Visionatrix does it) and Surprise Me.

Translation runs when the request asks for it (``translate=1``), the flow supports it
(``is_translations_supported``) and the user's ``translations_provider`` is set (it is the
"auto-translation" switch: unset, the flag is ignored, as in Visionatrix). Only text inputs
marked ``translatable`` whose text is judged non-English are sent. Originals stay in
``input_params``; translations go to ``translated_input_params`` and into the graph.

Surprise Me (form field ``surprise_me=1``, flows with a ``prompt`` input and ``count``) asks the
``llm_provider`` for one random prompt per task in a single request, themed by the given prompt.

A provider that is down or misconfigured fails the request with its error named (412 when not
configured, 502 when it refused, 504 when it did not answer in time): never a silent fallback.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix import llm_settings
from visionatrix.flows.model import Flow
from visionatrix.llm import LLMSettings, provider
from visionatrix.llm import prompts as llm_prompts
from visionatrix.schemas import TranslatePromptResponse, UserInfo
from visionatrix.tasks.requests import TaskRequest

SURPRISE_FIELD = "surprise_me"
PerTask = list[tuple[dict[str, Any], dict[str, Any] | None]]


async def prepare(
    session: AsyncSession,
    user: UserInfo,
    flow: Flow,
    values: dict[str, Any],
    req: TaskRequest,
) -> PerTask:
    """Each of the ``req.count`` tasks' ``(input values, translated values or None)``."""
    translated: dict[str, Any] = {}
    settings: LLMSettings | None = None
    count = req.count
    surprise = str(req.values.get(SURPRISE_FIELD, "")).strip() == "1"
    if req.translate and flow.is_translations_supported and _to_translate(flow, values):
        settings = await llm_settings.for_server(session, user)
        translated = await _translate_inputs(settings, flow, values)
    per_task: PerTask = [(dict(values), dict(translated)) for _ in range(count)]
    if surprise and flow.is_surprise_me_supported:
        settings = settings or await llm_settings.for_server(session, user)
        theme = str(translated.get("prompt", values.get("prompt", "")) or "")
        for (own, trans), text in zip(per_task, await _surprise(settings, theme, count), strict=True):
            (trans if "prompt" in trans else own)["prompt"] = text
    return [(own, trans or None) for own, trans in per_task]


async def translate_prompt(
    session: AsyncSession, user: UserInfo, prompt: str, system_prompt: str | None
) -> TranslatePromptResponse:
    """``POST /vapi/other/translate-prompt``: the prompt in English, whatever its language."""
    settings = await llm_settings.for_server(session, user)
    chosen = provider(settings.translations_provider, settings, setting="translations_provider")
    reply = await asyncio.to_thread(chosen.ask, llm_prompts.translation(prompt, system_prompt))
    return TranslatePromptResponse(
        prompt=prompt, result=llm_prompts.translated_text(reply.text), done_reason=reply.done_reason
    )


def _to_translate(flow: Flow, values: dict[str, Any]) -> list[str]:
    return [
        p.name
        for p in flow.input_params
        if p.translatable
        and isinstance(values.get(p.name), str)
        and values[p.name].strip()
        and not llm_prompts.is_english(values[p.name])
    ]


async def _translate_inputs(settings: LLMSettings, flow: Flow, values: dict[str, Any]) -> dict[str, Any]:
    if not settings.translations_provider:
        return {}
    chosen = provider(settings.translations_provider, settings, setting="translations_provider")
    names = _to_translate(flow, values)
    replies = await asyncio.gather(
        *(asyncio.to_thread(chosen.ask, llm_prompts.translation(values[name])) for name in names)
    )
    return {name: llm_prompts.translated_text(r.text) for name, r in zip(names, replies, strict=True)}


async def _surprise(settings: LLMSettings, theme: str, count: int) -> list[str]:
    chosen = provider(settings.llm_provider, settings, setting="llm_provider")
    reply = await asyncio.to_thread(chosen.ask, llm_prompts.surprise_request(count, theme))
    return llm_prompts.surprise_prompts(reply.text, count, chosen.name)
