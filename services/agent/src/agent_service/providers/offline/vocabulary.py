"""Every word the offline provider understands in a data question, and the words it corrects.

A data question is answered only when each of its words is one of these, a number, or part of a
name; any other word is named back to the user instead of being ignored (`wording.unknown_words`).
"""

from __future__ import annotations

from typing import Final

from agent_service.providers.offline.period import MONTHS

# Words that carry no meaning of their own in a data question.
_FUNCTION_WORDS: Final = """
    a an the and or but nor of for in on at to by with without from into onto about as than then
    is are was were be been being am do does did doing done have has had having get got gets
    i we our ours us my me you your yours it its they them their those these this that there here
    what which who whom whose when where how many much any all every each some both either
    please can could would will should shall may might must let lets tell show give list find
    see display name count know want need like just also only now so ok okay hi hey hello
    thanks thank right currently current total number numbers amount sum whats what's who's
    how's there's that's it's we've we're i'd i'm i'll you're don't doesn't didn't isn't aren't
    wasn't weren't not no yes same other one ones more most less least over under up out off
    again still ever far per just overall altogether exactly approximately about roughly
    give me tell us quick quickly real really actually pull bring look looking check
    so far yet already kind sort type types breakdown broken down split grouped across vs versus
    compare compared comparison against difference between change changed
    ranked rank ranking order ordered sorted highest lowest biggest largest smallest top bottom
    best worst fewest busiest newest latest oldest recent recently first second third fourth
    fifth sixth seventh eighth ninth tenth last next previous prior before after earlier later
    since until through till during within past ago entire whole full
    percent percentage share proportion ratio fraction rate rates portion pct
    average avg mean typical typically median
    did do does has have had happen happened
    list listing lists summary summarise summarize report overview stats statistics figure
    figures data records record info information details detail everything anything
    exist exists existing there
    people person someone anyone guys folks
    currently presently moment time times
    named called name names
    status statuses
    long longest serving senior seniority tenure been with employed joined started stayed
    around here company business
    among amongst pls plz thx ty ever single dollars dollar bucks came come comes
    we've we'd nobody noone thru
    currently booked assigned assignment
    value values worth
    """
_DOMAIN_WORDS: Final = """
    technician technicians tech techs employee employees staff worker workers team member members
    crew hires hire hired hiring onboarded new
    customer customers client clients account accounts
    job jobs work order orders appointment appointments visit visits service call calls task tasks
    schedule scheduled scheduling calendar agenda
    revenue revenues earn earned earning earnings earns income sales sale billed made make
    makes making money bring brought in job's
    hourly hour hours wage wages pay paid pays rate rates expensive cheapest cheap
    active inactive leave away former longer
    progress ongoing underway worked open pending outstanding unfinished
    completed complete completes completing finished finish finishes done closed
    cancelled canceled cancellation cancellations cancel
    unassigned overdue late behind due
    specialty specialties specialization specializations specializing specialized specialize
    specialise specialised specialising trade trades skill skills
    segment segments residential commercial homeowner homeowners household households home homes
    business businesses type
    city cities town towns location locations based located near
    month months monthly year years yearly annual annually week weeks weekly day days daily
    quarter quarters quarterly today yesterday tomorrow tonight ytd date dates
    weekend weekends
    monday tuesday wednesday thursday friday saturday sunday
    jan feb mar apr jun jul aug sep sept oct nov dec
    q1 q2 q3 q4
    one two three four five six seven eight nine ten twelve fifteen twenty thirty ninety
    idle never booked
    long take took takes taking duration turnaround complete
    biggest big largest large smallest small size ticket
    heating cooling ventilation refrigeration ductwork drain drains repiping fixture fixtures
    lighting generator generators plumbing plumber plumbers electric electrical electrician
    electricians hvac roof roofing carpentry carpenter appliance appliances solar paint painting
    landscaping locksmith pest water heater heaters leak detection wiring panel upgrade
    upgrades ev charger chargers
    many
    """
VOCABULARY: Final[frozenset[str]] = (
    frozenset(_FUNCTION_WORDS.split()) | frozenset(_DOMAIN_WORDS.split()) | frozenset(MONTHS)
)
"""Lower-case words a data question may use."""

CORRECTABLE: Final[tuple[str, ...]] = tuple(
    sorted(
        {w for w in _DOMAIN_WORDS.split() if len(w) >= 5}
        | {m for m in MONTHS if len(m) >= 5}
        | {"average", "percent", "percentage", "compare", "between", "schedule", "longest"}
    )
)
"""Words a misspelling is corrected to ("tecnicians" -> "technicians")."""
