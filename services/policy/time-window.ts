import { WEEKDAYS, type TimeWindow, type Weekday } from "./schema.js";

const MINUTES_PER_HOUR = 60;

function minutesOf(hhmm: string): number {
  const [hours, minutes] = hhmm.split(":").map(Number);
  return hours * MINUTES_PER_HOUR + minutes;
}

/** Local weekday (0 = Sunday) and minute of the day of an instant in a time zone. */
type LocalClock = (now: Date) => { day: number; minute: number };

function localClock(timezone: string): LocalClock {
  if (timezone === "UTC" || timezone === "Etc/UTC") {
    return (now) => ({ day: now.getUTCDay(), minute: now.getUTCHours() * MINUTES_PER_HOUR + now.getUTCMinutes() });
  }
  const format = new Intl.DateTimeFormat("en-US", { timeZone: timezone, weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return (now) => {
    let day = 0;
    let minute = 0;
    for (const part of format.formatToParts(now)) {
      if (part.type === "weekday") day = WEEKDAYS.indexOf(part.value.toLowerCase() as Weekday);
      else if (part.type === "hour") minute += Number(part.value) * MINUTES_PER_HOUR;
      else if (part.type === "minute") minute += Number(part.value);
    }
    return { day, minute };
  };
}

/**
 * Compiles a time window into a test on an instant. The window is open from
 * `start` (inclusive) to `end` (exclusive) in local time on each listed day.
 * When `end` is earlier than `start` the window crosses midnight: it opens on
 * a listed day and closes the next morning, whatever that next day is.
 */
export function compileTimeWindow(window: TimeWindow): (now: Date) => boolean {
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  const days = new Set(window.days.map((day) => WEEKDAYS.indexOf(day)));
  const clock = localClock(window.timezone);
  if (start < end) {
    return (now) => {
      const local = clock(now);
      return days.has(local.day) && local.minute >= start && local.minute < end;
    };
  }
  return (now) => {
    const local = clock(now);
    if (local.minute >= start) return days.has(local.day);
    const previousDay = (local.day + WEEKDAYS.length - 1) % WEEKDAYS.length;
    return local.minute < end && days.has(previousDay);
  };
}
