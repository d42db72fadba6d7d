//! `probe top` on a terminal: a screen redrawn in place, through termios
//! and escape sequences, with libc only.
//!
//! The terminal is put in non-canonical mode without echo (keys arrive one
//! by one, unseen), with signals left on, so Ctrl+C still sends SIGINT,
//! which the monitor takes like any stop. The alternate screen keeps the
//! user's scrollback as it was. Everything is undone when the `Screen` is
//! dropped, on every way out (an error included), and the totals are then
//! printed on the normal screen.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd};

const ENTER: &str = "\x1b[?1049h\x1b[?25l";
const LEAVE: &str = "\x1b[?25h\x1b[?1049l";
const HOME: &str = "\x1b[H";
const CLEAR_LINE: &str = "\x1b[K";
const CLEAR_BELOW: &str = "\x1b[J";

fn isatty(fd: i32) -> bool {
    // SAFETY: isatty takes any integer.
    unsafe { libc::isatty(fd) == 1 }
}

/// stdout is a terminal: `top` draws a screen.
pub fn stdout_is_terminal() -> bool {
    isatty(libc::STDOUT_FILENO)
}

/// A key the user pressed.
#[derive(Debug, PartialEq, Eq)]
pub enum Key {
    Quit,
    Other,
}

/// The terminal in screen mode.
pub struct Screen {
    /// The keyboard's settings before, when stdin is a terminal.
    saved: Option<libc::termios>,
    out: io::Stdout,
}

impl Screen {
    /// Takes over the terminal on stdout (and stdin for keys, if it is one).
    pub fn open() -> io::Result<Screen> {
        let saved = if isatty(libc::STDIN_FILENO) {
            // SAFETY: termios is plain data, filled by tcgetattr.
            let mut t: libc::termios = unsafe { std::mem::zeroed() };
            // SAFETY: a valid fd and a live termios.
            if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut t) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let mut raw = t;
            raw.c_lflag &= !(libc::ICANON | libc::ECHO);
            raw.c_cc[libc::VMIN] = 0;
            raw.c_cc[libc::VTIME] = 0;
            // SAFETY: as above.
            if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSAFLUSH, &raw) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Some(t)
        } else {
            None
        };
        let mut s = Screen {
            saved,
            out: io::stdout(),
        };
        s.out.write_all(ENTER.as_bytes())?;
        s.out.flush()?;
        Ok(s)
    }

    /// (rows, columns) of the terminal; 24x80 if it does not say.
    pub fn size(&self) -> (usize, usize) {
        // SAFETY: winsize is plain data, filled by the ioctl.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes one winsize.
        let r = unsafe {
            libc::ioctl(
                self.out.as_raw_fd(),
                libc::TIOCGWINSZ,
                &mut ws as *mut libc::winsize,
            )
        };
        if r != 0 || ws.ws_row == 0 || ws.ws_col == 0 {
            return (24, 80);
        }
        (ws.ws_row as usize, ws.ws_col as usize)
    }

    /// Draws `lines` from the top left, each cut to the width, and clears
    /// what the last frame left below them.
    pub fn draw(&mut self, lines: &[String]) -> io::Result<()> {
        let (rows, cols) = self.size();
        let mut frame = String::from(HOME);
        for (i, line) in lines.iter().take(rows).enumerate() {
            let cut: String = line.chars().take(cols).collect();
            frame.push_str(&cut);
            frame.push_str(CLEAR_LINE);
            if i + 1 < rows.min(lines.len()) {
                frame.push_str("\r\n");
            }
        }
        frame.push_str(CLEAR_BELOW);
        self.out.write_all(frame.as_bytes())?;
        self.out.flush()
    }

    /// The keys pressed since the last look, without waiting.
    pub fn keys(&self) -> Vec<Key> {
        if self.saved.is_none() {
            return Vec::new();
        }
        let mut buf = [0u8; 64];
        // SAFETY: stdin stays open for the process's life.
        let stdin = unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) };
        let mut keys = Vec::new();
        loop {
            // VMIN 0, VTIME 0: returns at once with what is there.
            // SAFETY: reads into a live buffer of its length.
            let n = unsafe {
                libc::read(
                    stdin.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                )
            };
            if n <= 0 {
                return keys;
            }
            keys.extend(buf[..n as usize].iter().map(|&b| match b {
                b'q' | b'Q' => Key::Quit,
                _ => Key::Other,
            }));
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.out.write_all(LEAVE.as_bytes());
        let _ = self.out.flush();
        if let Some(t) = &self.saved {
            // SAFETY: the settings read in `open`, back on the same fd.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSAFLUSH, t) };
        }
    }
}
